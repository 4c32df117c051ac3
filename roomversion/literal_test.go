package roomversion

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestNoVersionLiteralsOutsideTable fails if non-test Go code outside this
// package compares a value with a room version literal ("1" to "12"), uses
// one as a switch case, or passes one to roomversion.Get. Code must read
// the table's behaviour fields instead.
//
// The heuristic looks only at those three shapes, so that unrelated
// strings that happen to be "1" (a key version, a test fixture) are not
// flagged. Test files are skipped: vectors name the versions they were
// written for.
func TestNoVersionLiteralsOutsideTable(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	isVersion := func(e ast.Expr) bool {
		lit, ok := e.(*ast.BasicLit)
		if !ok || lit.Kind != token.STRING {
			return false
		}
		s, err := strconv.Unquote(lit.Value)
		if err != nil {
			return false
		}
		n, err := strconv.Atoi(s)
		return err == nil && n >= 1 && n <= 12 && strconv.Itoa(n) == s
	}
	var found []string
	files := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path == filepath.Join(root, "roomversion") || name == "testdata" || name == "bench" || (strings.HasPrefix(name, ".") && path != root) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, src, 0)
		if err != nil {
			return err
		}
		files++
		report := func(n ast.Node) {
			rel, _ := filepath.Rel(root, path)
			found = append(found, rel+":"+strconv.Itoa(fset.Position(n.Pos()).Line))
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch x := n.(type) {
			case *ast.BinaryExpr:
				if (x.Op == token.EQL || x.Op == token.NEQ) && (isVersion(x.X) || isVersion(x.Y)) {
					report(x)
				}
			case *ast.CaseClause:
				for _, e := range x.List {
					if isVersion(e) {
						report(e)
					}
				}
			case *ast.CallExpr:
				if sel, ok := x.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "Get" {
					if pkg, ok := sel.X.(*ast.Ident); ok && pkg.Name == "roomversion" {
						for _, a := range x.Args {
							if isVersion(a) {
								report(a)
							}
						}
					}
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 10 {
		t.Fatalf("walked only %d files from %s; is the walk broken?", files, root)
	}
	for _, f := range found {
		t.Errorf("%s: room version literal outside package roomversion; use a roomversion.Rules field", f)
	}
}
