package main

import "errors"

func runAgent(args []string) error {
	return errors.New("the agent is not built yet")
}
