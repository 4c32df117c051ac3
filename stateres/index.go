package stateres

import "context"

// AuthChainIndex is implemented by providers that keep auth chains indexed
// (for example a database with a chain cover index). When the provider
// passed to [Resolve] implements it, Resolve asks it for the auth
// difference and the conflicted state subgraph instead of loading the auth
// chains of every event in the state sets, so the work is proportional to
// the conflict rather than to the room's history.
type AuthChainIndex interface {
	// AuthChainDifference returns the events that are in the auth chain of
	// some, but not all, of the state sets (each given as its event IDs).
	// The auth chain of a set is the union of the auth chains of its events,
	// not counting the events themselves unless another event's chain
	// holds them.
	AuthChainDifference(ctx context.Context, stateSets [][]string) ([]string, error)
	// ConflictedSubgraph returns every event that lies on an auth_events
	// path between two of the given conflicted events (room version 12 and
	// later). Returning the conflicted events themselves as well is allowed.
	ConflictedSubgraph(ctx context.Context, conflicted []string) ([]string, error)
	// InAuthChains returns the events of candidates that are in the auth
	// chain of at least one event of of.
	InAuthChains(ctx context.Context, of, candidates []string) ([]string, error)
}
