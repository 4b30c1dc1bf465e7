package main

// sysChecks: the status paths a client reads before anything else.
func sysChecks(s *suite) {
	sys := s.root.Sys()
	s.check("sys/health: initialised, unsealed, active", func() error {
		h, err := sys.Health()
		if err != nil {
			return err
		}
		return all(eq("initialized", h.Initialized, true), eq("sealed", h.Sealed, false), eq("standby", h.Standby, false),
			truth(h.Version != "", "version is empty"), truth(h.ServerTimeUTC > 0, "server_time_utc is %d", h.ServerTimeUTC))
	})
	s.check("sys/seal-status: shamir, unsealed, threshold and shares", func() error {
		st, err := sys.SealStatus()
		if err != nil {
			return err
		}
		return all(eq("type", st.Type, "shamir"), eq("initialized", st.Initialized, true), eq("sealed", st.Sealed, false),
			truth(st.T >= 1 && st.N >= st.T, "t=%d n=%d", st.T, st.N), eq("progress", st.Progress, 0),
			truth(st.Version != "", "version is empty"))
	})
	s.check("sys/leader: this node leads", func() error {
		l, err := sys.Leader()
		if err != nil {
			return err
		}
		// One node without HA answers ha_enabled false; a node that leads says so with is_self.
		return truth(!l.HAEnabled || l.IsSelf, "ha_enabled and not is_self: %+v", l)
	})
	s.check("sys/key-status: term and install time", func() error {
		k, err := sys.KeyStatus()
		if err != nil {
			return err
		}
		return all(truth(k.Term >= 1, "term %d", k.Term), truth(!k.InstallTime.IsZero(), "install_time is zero"))
	})
}
