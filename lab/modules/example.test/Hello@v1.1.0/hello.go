// Package hello is a lab module for modtrace captures; it requires example.test/Util.
package hello

import "example.test/Util"

// Message is what the lab's hello says.
func Message() string {
	return util.Greeting("lab")
}
