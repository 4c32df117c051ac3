package canonicaljson

import (
	"bytes"
	"encoding/json"
)

// Marshal encodes v with the semantics of encoding/json (struct tags,
// MarshalJSON methods, maps with sorted keys) and returns its canonical
// form. HTML characters are not escaped. Numbers follow the lenient rules
// of [Canonicalize]: encoding/json writes large floats with an exponent,
// which comes out as a plain integer when the value is one.
func Marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return Append(make([]byte, 0, buf.Len()), buf.Bytes(), Options{})
}
