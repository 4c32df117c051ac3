// Package bytesconv converts between strings and byte slices without
// copying. It is the only package of the module that imports unsafe.
//
// A Go string is immutable; a byte slice is not. The conversions here make
// a string and a slice share one array, so they are safe only when nothing
// writes to that array for as long as either value is in use:
//
//   - [String](b): the caller never modifies b (nor any slice sharing its
//     array) afterwards, or stops using the string before it does. Parsers
//     use it on buffers they own and never change again.
//   - [Bytes](s): nobody writes to the result. The slice's capacity is its
//     length, so append copies instead of writing past it; callers that
//     return it document that it must not be modified.
//
// When in doubt, copy: string(b) and []byte(s) are always safe.
package bytesconv

import "unsafe"

// String returns the bytes of b as a string without copying them. b must
// not be modified while the string is in use.
func String(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// Bytes returns the bytes of s as a slice without copying them. The slice
// must never be written to. Its capacity is its length, so an append
// copies. An empty s gives an empty, non-nil slice.
func Bytes(s string) []byte {
	if s == "" {
		return []byte{}
	}
	return unsafe.Slice(unsafe.StringData(s), len(s))
}
