package main

import (
	"encoding/base64"
	"fmt"
	"os"
	"strings"

	"github.com/hashicorp/vault/api"
)

// unsealKeys are the server's key shares, from COFRE_UNSEAL_KEYS (comma-separated, hex or base64).
func unsealKeys() []string {
	var keys []string
	for _, k := range strings.Split(os.Getenv("COFRE_UNSEAL_KEYS"), ",") {
		if k = strings.TrimSpace(k); k != "" {
			keys = append(keys, k)
		}
	}
	return keys
}

// decodeRootToken undoes generate-root's encoding: base64 (without padding) of the token XOR the OTP.
func decodeRootToken(encoded, otp string) (string, error) {
	raw, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(encoded, "="))
	if err != nil {
		return "", err
	}
	if len(raw) != len(otp) {
		return "", fmt.Errorf("encoded token of %d bytes for an OTP of %d", len(raw), len(otp))
	}
	out := make([]byte, len(raw))
	for i := range raw {
		out[i] = raw[i] ^ otp[i]
	}
	return string(out), nil
}

// operatorChecks: sys/generate-root and, last, sys/rekey, which replaces the key shares (then the new ones unseal).
func operatorChecks(s *suite) {
	keys := unsealKeys()
	sys := s.root.Sys()
	s.check("sys/generate-root: COFRE_UNSEAL_KEYS holds at least the threshold of shares", func() error {
		st, err := sys.SealStatus()
		if err != nil {
			return err
		}
		return truth(len(keys) >= st.T && st.T >= 1, "%d keys for a threshold of %d", len(keys), st.T)
	})
	// Generate-root and rekey need no token: the key shares are the authority.
	anon := s.as("")
	s.check("sys/generate-root: init, the threshold of shares, and the decoded token is a working root token", func() error {
		start, err := anon.Sys().GenerateRootInit("", "")
		if err != nil {
			return err
		}
		status, err := anon.Sys().GenerateRootStatus()
		if err != nil {
			return err
		}
		if err := all(eq("started", start.Started, true), eq("otp length", len(start.OTP), start.OTPLength), eq("status nonce", status.Nonce, start.Nonce),
			eq("status otp", status.OTP, ""), eq("progress", status.Progress, 0)); err != nil {
			return err
		}
		var r *api.GenerateRootStatusResponse
		for _, k := range keys[:status.Required] {
			if r, err = anon.Sys().GenerateRootUpdate(k, start.Nonce); err != nil {
				return err
			}
		}
		if err := eq("complete", r.Complete, true); err != nil {
			return err
		}
		token, err := decodeRootToken(r.EncodedToken, start.OTP)
		if err != nil {
			return err
		}
		self, err := s.as(token).Auth().Token().LookupSelf()
		if err != nil {
			return err
		}
		policies, _ := self.TokenPolicies()
		after, err := anon.Sys().GenerateRootStatus()
		if err != nil {
			return err
		}
		return all(eq("policies", policies, []string{"root"}), eq("started after completion", after.Started, false),
			s.root.Auth().Token().RevokeOrphan(token))
	})
	s.check("sys/generate-root: a wrong nonce is refused; cancel ends the attempt", func() error {
		start, err := anon.Sys().GenerateRootInit("", "")
		if err != nil {
			return err
		}
		_, errNonce := anon.Sys().GenerateRootUpdate(keys[0], "not-the-nonce")
		_, errAgain := anon.Sys().GenerateRootInit("", "")
		if err := anon.Sys().GenerateRootCancel(); err != nil {
			return err
		}
		st, err := anon.Sys().GenerateRootStatus()
		if err != nil {
			return err
		}
		_, errAfter := anon.Sys().GenerateRootUpdate(keys[0], start.Nonce)
		return all(status("wrong nonce", errNonce, 400), status("second init", errAgain, 400), eq("started", st.Started, false),
			status("update after cancel", errAfter, 400))
	})

	s.check("sys/rekey: init and the threshold of old shares give new shares; after a seal the new ones unseal, the old ones do not", func() error {
		start, err := anon.Sys().RekeyInit(&api.RekeyInitRequest{SecretShares: 5, SecretThreshold: 2})
		if err != nil {
			return err
		}
		progress, err := anon.Sys().RekeyStatus()
		if err != nil {
			return err
		}
		if err := all(eq("started", start.Started, true), eq("n", progress.N, 5), eq("t", progress.T, 2), eq("nonce", progress.Nonce, start.Nonce)); err != nil {
			return err
		}
		st, err := sys.SealStatus()
		if err != nil {
			return err
		}
		var r *api.RekeyUpdateResponse
		for _, k := range keys[:st.T] {
			if r, err = anon.Sys().RekeyUpdate(k, start.Nonce); err != nil {
				return err
			}
		}
		if err := all(eq("complete", r.Complete, true), eq("keys", len(r.Keys), 5), eq("keys_base64", len(r.KeysB64), 5)); err != nil {
			return err
		}
		if err := sys.Seal(); err != nil {
			return err
		}
		// The old shares (the threshold of them, which the new threshold also is) no longer open it.
		oldOpened := false
		for _, k := range keys[:st.T] {
			if u, err := anon.Sys().Unseal(k); err == nil && !u.Sealed {
				oldOpened = true
			}
		}
		if _, err := anon.Sys().ResetUnsealProcess(); err != nil {
			return err
		}
		var u *api.SealStatusResponse
		for _, k := range r.KeysB64[3:] {
			if u, err = anon.Sys().Unseal(k); err != nil {
				return err
			}
		}
		after, err := sys.SealStatus()
		if err != nil {
			return err
		}
		self, err := s.root.Auth().Token().LookupSelf()
		return all(truth(!oldOpened, "the old shares unsealed the server"), eq("sealed", u.Sealed, false), eq("t", after.T, 2), eq("n", after.N, 5),
			err, truth(self != nil, "the root token is gone after the rekey"))
	})
}
