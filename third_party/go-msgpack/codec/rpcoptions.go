package codec

// [warren] RPCOptions stays as a field of BasicHandle, so that code setting
// it still builds; the net/rpc codecs it configured (upstream's rpc.go) are
// left out. See ../README.warren.md.
type RPCOptions struct {
	// RPCNoBuffer configured whether the RPC codecs buffered reads and writes.
	RPCNoBuffer bool
}
