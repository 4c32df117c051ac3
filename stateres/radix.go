package stateres

// radixOrder returns the indices 0..n-1 ordered by the keys, compared
// lexicographically (keys[0] first; each slice has n entries), ascending,
// keeping the index order among equal keys. It is an LSD radix sort of 11
// bits per pass that skips the bits no two keys differ in, so sorting n
// events costs a few passes over them instead of n log n comparisons.
func radixOrder(n int, keys ...[]uint64) []int32 {
	order := make([]int32, n)
	for i := range order {
		order[i] = int32(i)
	}
	if n < 2 {
		return order
	}
	const bits = 11
	tmp := make([]int32, n)
	var count [1 << bits]int
	for k := len(keys) - 1; k >= 0; k-- {
		key := keys[k]
		var varies uint64
		for _, v := range key {
			varies |= v ^ key[0]
		}
		for shift := uint(0); shift < 64 && varies>>shift != 0; shift += bits {
			if (varies>>shift)&(1<<bits-1) == 0 {
				continue // every key has the same digit here
			}
			clear(count[:])
			for _, i := range order {
				count[(key[i]>>shift)&(1<<bits-1)]++
			}
			sum := 0
			for d, c := range count {
				count[d] = sum
				sum += c
			}
			for _, i := range order {
				d := (key[i] >> shift) & (1<<bits - 1)
				tmp[count[d]] = i
				count[d]++
			}
			order, tmp = tmp, order
		}
	}
	return order
}

// signedKey maps an int64 to a uint64 of the same order.
func signedKey(v int64) uint64 { return uint64(v) ^ 1<<63 }
