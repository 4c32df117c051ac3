package roomversion

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/table.golden")

// TestTableAgainstSpec checks each row against the spec's summary (FACTS
// §4.1, §4.3), written out here independently of the table's diffs.
func TestTableAgainstSpec(t *testing.T) {
	type row struct {
		idFormat                                              EventIDFormat
		stateRes                                              StateResAlgorithm
		keyValidity, strictJSON, aliases, redactRule, notif   bool
		knock, restricted, knockRestricted, intPL             bool
		creatorFromSender, redactsInContent, roomIDFromCreate bool
		createInAuth, privileged                              bool
	}
	want := map[string]row{
		"1":  {EventIDServerGenerated, StateResV1, false, false, true, true, false, false, false, false, false, false, false, false, true, false},
		"2":  {EventIDServerGenerated, StateResV2, false, false, true, true, false, false, false, false, false, false, false, false, true, false},
		"3":  {EventIDBase64, StateResV2, false, false, true, false, false, false, false, false, false, false, false, false, true, false},
		"4":  {EventIDURLSafeBase64, StateResV2, false, false, true, false, false, false, false, false, false, false, false, false, true, false},
		"5":  {EventIDURLSafeBase64, StateResV2, true, false, true, false, false, false, false, false, false, false, false, false, true, false},
		"6":  {EventIDURLSafeBase64, StateResV2, true, true, false, false, true, false, false, false, false, false, false, false, true, false},
		"7":  {EventIDURLSafeBase64, StateResV2, true, true, false, false, true, true, false, false, false, false, false, false, true, false},
		"8":  {EventIDURLSafeBase64, StateResV2, true, true, false, false, true, true, true, false, false, false, false, false, true, false},
		"9":  {EventIDURLSafeBase64, StateResV2, true, true, false, false, true, true, true, false, false, false, false, false, true, false},
		"10": {EventIDURLSafeBase64, StateResV2, true, true, false, false, true, true, true, true, true, false, false, false, true, false},
		"11": {EventIDURLSafeBase64, StateResV2, true, true, false, false, true, true, true, true, true, true, true, false, true, false},
		"12": {EventIDURLSafeBase64, StateResV2_1, true, true, false, false, true, true, true, true, true, true, true, true, false, true},
	}
	all := All()
	if len(all) != 12 {
		t.Fatalf("%d versions, want 12", len(all))
	}
	for i, r := range all {
		if r.ID != fmt.Sprint(i+1) || !r.Stable {
			t.Errorf("row %d: ID %q stable %v", i, r.ID, r.Stable)
		}
		w := want[r.ID]
		got := row{r.EventIDFormat, r.StateResolution, r.EnforceKeyValidity, r.StrictCanonicalJSON, r.SpecialCaseAliases,
			r.RedactionAuthRule, r.NotificationsPowerLevels, r.Knocking, r.RestrictedJoins, r.KnockRestricted, r.IntegerPowerLevels,
			r.CreatorFromSender, r.RedactsInContent, r.RoomIDFromCreateEvent, r.CreateEventInAuthEvents, r.PrivilegedCreators}
		if got != w {
			t.Errorf("version %s:\n got %+v\nwant %+v", r.ID, got, w)
		}
		if r.EventReferencesWithHashes != (r.EventIDFormat == EventIDServerGenerated) || r.SignedByEventIDServer != r.EventReferencesWithHashes {
			t.Errorf("version %s: reference/signature format inconsistent", r.ID)
		}
		wantDepth := int64(1<<63 - 1)
		if r.StrictCanonicalJSON {
			wantDepth = 1<<53 - 1
		}
		if r.MaxDepth != wantDepth {
			t.Errorf("version %s: MaxDepth %d", r.ID, r.MaxDepth)
		}
		// Redaction: origin survives until 11; aliases content until 6;
		// invite power level from 11.
		if r.Redaction.KeepsTopLevel("origin") == r.CreatorFromSender {
			t.Errorf("version %s: origin kept %v", r.ID, r.Redaction.KeepsTopLevel("origin"))
		}
		if p, _ := r.Redaction.ContentKeep("m.room.aliases"); (len(p) > 0) != r.SpecialCaseAliases {
			t.Errorf("version %s: aliases content kept %v", r.ID, p)
		}
	}
}

func TestGet(t *testing.T) {
	r, err := Get(Default)
	if err != nil || r.ID != Default {
		t.Fatalf("Get(Default): %v %v", r, err)
	}
	for _, bad := range []string{"", "13", "1.0", "org.matrix.msc1234", " 1", strings.Repeat("9", 100)} {
		if _, err := Get(bad); !errors.Is(err, ErrUnknown) {
			t.Errorf("Get(%q): %v", bad, err)
		}
	}
	if got := strings.Join(Stable(), ","); got != "1,2,3,4,5,6,7,8,9,10,11,12" {
		t.Errorf("Stable() = %s", got)
	}
	// All returns a copy: changing it does not change the table.
	a := All()
	a[0].ID = "changed"
	if b := All(); b[0].ID != "1" {
		t.Fatal("All exposes the table")
	}
	p, _ := a[10].Redaction.ContentKeep("m.room.member")
	p[0][0] = "changed"
	if q, _ := All()[10].Redaction.ContentKeep("m.room.member"); q[0][0] != "membership" {
		t.Fatal("ContentKeep exposes the table")
	}
}

// dump renders the whole table for the golden file.
func dump() string {
	type plain Rules // no String method, so %+v prints every field
	var b strings.Builder
	for _, r := range All() {
		red := r.Redaction
		r.Redaction = Redaction{}
		fmt.Fprintf(&b, "%+v\n  top-level kept: %s\n", plain(r), strings.Join(red.TopLevelKeys(), " "))
		for _, typ := range red.EventTypes() {
			paths, all := red.ContentKeep(typ)
			fmt.Fprintf(&b, "  %s: all=%v %v\n", typ, all, paths)
		}
	}
	return b.String()
}

func TestGolden(t *testing.T) {
	got := dump()
	const path = "testdata/table.golden"
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Fatalf("table differs from %s; if the change is intended, run go test ./roomversion -update and review the diff", path)
	}
}
