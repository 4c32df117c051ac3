package membership

import (
	"cmp"
	"slices"

	"github.com/gomatrixlib/gomatrixlib/event"
)

func sortStrings(s []string) { slices.Sort(s) }

// sortByDepth orders events by depth, then event ID, so that results do
// not depend on map order.
func sortByDepth(evs []*event.PDU) {
	slices.SortFunc(evs, func(a, b *event.PDU) int {
		if c := cmp.Compare(a.Depth(), b.Depth()); c != 0 {
			return c
		}
		return cmp.Compare(a.EventID(), b.EventID())
	})
}
