package node

import "errors"

// replicaCore adapts replica.Replica to the engine interface.
var replicaCore = coreFuncs{
	newEngine: func(string, *Config) (engine, error) { return nil, errors.New("replica not available yet") },
	validate:  func(string, topicKind, []byte) verdict { return verdictIgnore },
}
