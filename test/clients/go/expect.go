package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"

	"github.com/hashicorp/vault/api"
)

// eq fails with what was compared when got is not want.
func eq(what string, got, want any) error {
	if !reflect.DeepEqual(got, want) {
		return fmt.Errorf("%s: got %#v, want %#v", what, got, want)
	}
	return nil
}

// all returns the first error of errs, so a check can list its expectations in order.
func all(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// truth fails with msg unless cond holds.
func truth(cond bool, format string, args ...any) error {
	if !cond {
		return fmt.Errorf(format, args...)
	}
	return nil
}

// status fails unless err is the client's ResponseError with this HTTP status.
func status(what string, err error, want int) error {
	var re *api.ResponseError
	if !errors.As(err, &re) {
		return fmt.Errorf("%s: want an HTTP %d error, got %v", what, want, err)
	}
	if re.StatusCode != want {
		return fmt.Errorf("%s: want HTTP %d, got %d (%v)", what, want, re.StatusCode, re.Errors)
	}
	return nil
}

// contains tells whether list holds item.
func contains(list []string, item string) bool {
	for _, x := range list {
		if x == item {
			return true
		}
	}
	return false
}

// stringsOf turns a JSON array (as the client decodes it) into strings.
func stringsOf(v any) []string {
	raw, _ := v.([]any)
	out := make([]string, 0, len(raw))
	for _, x := range raw {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

// jsonNumber is how the client decodes a JSON number (it uses UseNumber).
func jsonNumber(n int) json.Number { return json.Number(strconv.Itoa(n)) }

// keysOf lists a JSON object's keys, for messages.
func keysOf(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
