package sim

import "errors"

// errNoReplica is returned until the replica adapter is wired in.
var errNoReplica = errors.New("sim: no default node factory yet; set Config.Factory")

func defaultFactory(NodeConfig) (Node, error) { return nil, errNoReplica }

func defaultValidator(string, Topic, []byte) Verdict { return Accept }

func defaultNamespace([]byte) string { return "" }
