// Package util is a lab module for modtrace captures (an older version, so @v/list has two
// lines).
package util

// Greeting returns a greeting for name.
func Greeting(name string) string {
	return "hi, " + name
}
