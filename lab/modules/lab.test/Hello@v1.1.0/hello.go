// Package hello is a lab module for modtrace captures in direct mode (go-get discovery at
// https://lab.test); it requires lab.test/Util.
package hello

import "lab.test/Util"

// Message is what the lab's hello says.
func Message() string {
	return util.Greeting("lab")
}
