package node

import (
	"net/http"
)

func (n *Node) apiPull(w http.ResponseWriter, r *http.Request) error {
	return &apiError{http.StatusNotImplemented, "sync pull: not implemented yet"}
}

func (n *Node) apiPush(w http.ResponseWriter, r *http.Request) error {
	return &apiError{http.StatusNotImplemented, "sync push: not implemented yet"}
}
