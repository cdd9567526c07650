package fn

import (
	"strconv"

	"k8s.io/apimachinery/pkg/api/resource"
)

func itoa(i int32) string { return strconv.FormatInt(int64(i), 10) }

func mustQuantity(s string) resource.Quantity { return resource.MustParse(s) }
