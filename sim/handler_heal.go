package sim

// heal
//
// Removes every partition and one-way cut; peers reconnect.
func handleHeal(e *Env, _ Cmd) (string, error) {
	e.Sim.Heal()
	return "healed\n", nil
}
