// Package util is a lab module for modtrace captures: its path has an upper-case letter, so
// the go command asks the repo root for lab.test/!util.
package util

// Greeting returns a greeting for name.
func Greeting(name string) string {
	return "hello, " + name
}
