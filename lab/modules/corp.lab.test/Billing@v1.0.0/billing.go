// Package billing is the lab's private module: the company's own code, which only the
// company's proxy should ever be asked about.
package billing

// Invoice totals amounts in cents.
func Invoice(cents ...int64) int64 {
	var total int64
	for _, c := range cents {
		total += c
	}
	return total
}
