// Command homeserver will be the gomatrixlib reference homeserver. Until the
// examples/homeserver issue lands it only says so and exits.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "homeserver: placeholder: the reference homeserver is not built yet (see README.md, status)")
	os.Exit(1)
}
