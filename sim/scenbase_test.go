package sim

// scenarioBase is the configuration scenario tests start from.
func scenarioBase() Config { return fakeConfig(Config{}) }
