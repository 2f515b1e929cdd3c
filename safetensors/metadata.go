package safetensors

import (
	"fmt"
	"strconv"
	"strings"
)

// MetaInt reads a non-negative integer from a file's __metadata__. ok is
// false when the key is absent, empty, "none" or "null"; a value that is not
// a non-negative integer is an error naming the key.
func MetaInt(meta map[string]string, key string) (v int, ok bool, err error) {
	s, present := meta[key]
	if !present || s == "" || strings.EqualFold(s, "none") || strings.EqualFold(s, "null") {
		return 0, false, nil
	}
	v, err = strconv.Atoi(strings.TrimSpace(s))
	if err != nil || v < 0 {
		return 0, false, fmt.Errorf("metadata %s=%q is not a non-negative integer", key, s)
	}
	return v, true, nil
}

// MetaBool reads a boolean ("true"/"false", "1"/"0", "yes"/"no", any case)
// from a file's __metadata__. ok is false when the key is absent or empty.
func MetaBool(meta map[string]string, key string) (v bool, ok bool, err error) {
	s, present := meta[key]
	if !present || s == "" {
		return false, false, nil
	}
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "1", "yes":
		return true, true, nil
	case "false", "0", "no":
		return false, true, nil
	}
	return false, false, fmt.Errorf("metadata %s=%q is not a boolean", key, s)
}
