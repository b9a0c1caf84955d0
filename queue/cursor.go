package queue

// CursorNetwork returns the network whose jobs a List cursor points into,
// and false if after is not a cursor List returned. It lets a caller tell a
// bad cursor from a failing store before calling List.
func CursorNetwork(after string) (string, bool) {
	r, err := decodeCursor(after)
	if err != nil {
		return "", false
	}
	network, _ := r.split()
	return network, true
}
