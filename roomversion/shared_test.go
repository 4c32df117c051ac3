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
			case reflect.Struct: // Redaction: equal content in another array
				changed.Redaction.topLevel = slices.Clone(r.Redaction.topLevel)
				if len(changed.Redaction.topLevel) == 0 {
					changed.Redaction.topLevel = []string{"x"}
				}
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
