// Package opts parses the values of warrenctl's flags into API fields:
// published ports (-p), environment variables (-e), labels, placement
// constraints, sizes, CPU counts, "SERVICE=N" scale arguments and
// shell-like command strings (--entrypoint, --args).
//
// Everything here is pure: a string in, a value or an error a person can
// act on out. The errors name the flag value and show a correct example.
package opts
