module github.com/gomatrixlib/gomatrixlib/examples/homeserver

go 1.26.0

require github.com/gomatrixlib/gomatrixlib v0.0.0

replace github.com/gomatrixlib/gomatrixlib => ../..
