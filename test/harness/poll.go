package harness

import (
	"context"
	"fmt"
	"time"
)

// PollInterval is how long Poll waits between calls.
const PollInterval = 100 * time.Millisecond

// Poll calls fn until it returns nil or timeout passes, and returns fn's
// last meaningful error then.
func Poll(ctx context.Context, timeout time.Duration, fn func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		err := fn(ctx)
		if err == nil {
			return nil
		}
		// Keep the last meaningful error, not the deadline that cut the
		// final attempt short.
		if last == nil || ctx.Err() == nil {
			last = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("after %s: %w", timeout, last)
		case <-time.After(PollInterval):
		}
	}
}
