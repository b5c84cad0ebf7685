//go:build !(linux && (amd64 || arm64))

package thp

import "time"

// Start does nothing on this system.
func Start(interval time.Duration, reserve uint64) (stop func()) { return func() {} }
