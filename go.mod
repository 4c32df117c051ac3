module github.com/gomatrixlib/gomatrixlib

go 1.26.0

require (
	github.com/miekg/dns v1.1.73
	github.com/tidwall/gjson v1.20.1
	github.com/tidwall/sjson v1.2.7
)

require (
	filippo.io/edwards25519 v1.2.0 // indirect
	github.com/tidwall/match v1.1.1 // indirect
	github.com/tidwall/pretty v1.2.0 // indirect
	golang.org/x/net v0.62.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
)
