package bytesconv

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	for _, s := range []string{"", "a", "$event:example.org", "\x00\xff"} {
		b := Bytes(s)
		if string(b) != s || len(b) != len(s) || cap(b) != len(s) {
			t.Errorf("Bytes(%q) = %q (cap %d)", s, b, cap(b))
		}
		if b == nil {
			t.Errorf("Bytes(%q) is nil", s)
		}
		if got := String(b); got != s {
			t.Errorf("String(Bytes(%q)) = %q", s, got)
		}
	}
	if String(nil) != "" {
		t.Error("String(nil) is not empty")
	}
	// An append to the result of Bytes copies instead of writing past it.
	s := "abc"
	b := append(Bytes(s[:2]), 'x')
	if s != "abc" || string(b) != "abx" {
		t.Errorf("append wrote into the string: %q, %q", s, b)
	}
}

// TestNoUnsafeOutsideThisPackage fails if any Go file of the module
// (tests, examples and the bench module included) outside this package
// imports unsafe, or if the tree holds an assembly file.
func TestNoUnsafeOutsideThisPackage(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	self, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	files := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path == self || d.Name() == "testdata" || (strings.HasPrefix(d.Name(), ".") && path != root) {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(path, ".s") || strings.HasSuffix(path, ".S") {
			t.Errorf("%s: assembly file", path)
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, src, parser.ImportsOnly)
		if err != nil {
			return err
		}
		files++
		for _, imp := range f.Imports {
			if p, _ := strconv.Unquote(imp.Path.Value); p == "unsafe" {
				t.Errorf("%s imports unsafe; use internal/bytesconv", path)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 100 {
		t.Fatalf("walked only %d Go files: is the root %s right?", files, root)
	}
}
