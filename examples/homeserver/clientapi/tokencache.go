package clientapi

import "sync"

// tokenCache keeps the device of each access token seen, by tokenKey (a
// hash of the token), so that a request does not read cs_devices again.
// Every removal of devices or tokens (logout, device deletion) empties it
// after its write commits; a lookup that raced with a removal does not
// fill it (gen), so a removed token is never served from the cache once
// the removal has been answered.
type tokenCache struct {
	mu  sync.Mutex
	m   map[string]device
	gen uint64
}

// tokenCacheMax bounds the entries; past it the cache starts over.
const tokenCacheMax = 100000

func (c *tokenCache) get(key string) (device, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d, ok := c.m[key]
	return d, ok
}

// generation returns the value to pass to put for a lookup starting now.
func (c *tokenCache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// put keeps a device read from the database by a lookup that started at
// generation gen, unless a removal happened since.
func (c *tokenCache) put(key string, d device, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	if c.m == nil || len(c.m) >= tokenCacheMax {
		c.m = map[string]device{}
	}
	c.m[key] = d
}

// forget empties the cache; call it after a removal commits.
func (c *tokenCache) forget() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	clear(c.m)
}
