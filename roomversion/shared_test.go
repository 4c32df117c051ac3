package roomversion

import (
	"reflect"
	"slices"
	"testing"
)

func TestShared(t *testing.T) {
	t.Parallel()
	for _, r := range All() {
		got := Shared(r)
		if got != Shared(r) {
			t.Errorf("%s: two calls give two copies", r.ID)
		}
		if !reflect.DeepEqual(*got, r) {
			t.Errorf("%s: shared rules differ from the rules passed", r.ID)
		}
		// Changing any one field must give a private copy holding the change.
		rt := reflect.TypeOf(r)
		for i := range rt.NumField() {
			f := rt.Field(i)
			changed := r
			v := reflect.ValueOf(&changed).Elem().Field(i)
			switch f.Type.Kind() {
			case reflect.String:
				v.SetString(v.String() + "x")
			case reflect.Bool:
				v.SetBool(!v.Bool())
			case reflect.Int, reflect.Int64:
				v.SetInt(v.Int() + 1)
			case reflect.Struct: // Redaction: one more kept key
				changed.Redaction.topLevel = append(slices.Clone(r.Redaction.topLevel), "x")
			default:
				t.Fatalf("field %s of kind %v: teach this test to change it", f.Name, f.Type.Kind())
			}
			p := Shared(changed)
			if p == got || p == Shared(r) {
				t.Errorf("%s: changing %s still gives the shared copy", r.ID, f.Name)
			}
			if !reflect.DeepEqual(*p, changed) {
				t.Errorf("%s: copy with %s changed differs from the rules passed", r.ID, f.Name)
			}
		}
	}
}

// TestSharedEqualCopy: rules equal to a table row, keep-lists included, but
// held in other arrays, share the row.
func TestSharedEqualCopy(t *testing.T) {
	t.Parallel()
	for _, r := range All() {
		c := r
		c.Redaction.topLevel = slices.Clone(r.Redaction.topLevel)
		c.Redaction.content = slices.Clone(r.Redaction.content)
		if Shared(c) != Shared(r) {
			t.Errorf("%s: an equal copy of the rules gets its own copy", r.ID)
		}
		c.Redaction = c.Redaction.without("m.room.member")
		if Shared(c) == Shared(r) {
			t.Errorf("%s: rules keeping less share the row", r.ID)
		}
	}
}
