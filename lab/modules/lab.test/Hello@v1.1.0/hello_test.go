package hello

import "testing"

func TestMessage(t *testing.T) {
	if got := Message(); got != "hello, lab" {
		t.Fatalf("Message() = %q", got)
	}
}
