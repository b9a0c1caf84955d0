package main

import "syscall"

// childAttr makes a child die with the benchmark, so an interrupted run
// leaves no Caddy, emulator or app listening.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
