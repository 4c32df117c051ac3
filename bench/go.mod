module github.com/gomatrixlib/gomatrixlib/bench

go 1.26.0

replace github.com/gomatrixlib/gomatrixlib => ../

require (
	github.com/gomatrixlib/gomatrixlib v0.0.0-00010101000000-000000000000
	github.com/matrix-org/gomatrixserverlib v0.0.0-20240910190622-2c764912ce93
)

require (
	github.com/matrix-org/util v0.0.0-20200807132607-55161520e1d4 // indirect
	github.com/miekg/dns v1.1.73 // indirect
	github.com/sirupsen/logrus v1.9.0 // indirect
	github.com/tidwall/gjson v1.20.1 // indirect
	github.com/tidwall/match v1.1.1 // indirect
	github.com/tidwall/pretty v1.2.1 // indirect
	github.com/tidwall/sjson v1.2.7 // indirect
	golang.org/x/crypto v0.59.0 // indirect
	golang.org/x/net v0.62.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
)
