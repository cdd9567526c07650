package fn

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"

	"k8s.io/apimachinery/pkg/api/resource"
)

func itoa(i int32) string { return strconv.FormatInt(int64(i), 10) }

func mustQuantity(s string) resource.Quantity { return resource.MustParse(s) }

// digest is a short content digest (16 hex digits) for annotations that
// tell one version of an input from another.
func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}
