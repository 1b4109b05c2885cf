// Command mkimage writes the busybox test image as a tarball, for the
// Makefile and for loading by hand:
//
//	go run ./qa/testimage/mkimage -o busybox.tar -name localhost/busybox:latest [-format oci|docker]
//
// The tarball loads with `ctr -n warren image import busybox.tar` or
// `docker load -i busybox.tar` (docker format).
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/warren-edge/warren/qa/testimage"
)

func main() {
	out := flag.String("o", "", "output `file` (- for stdout)")
	name := flag.String("name", testimage.DefaultName, "image `reference`")
	format := flag.String("format", "oci", "tarball format: oci (OCI image layout) or docker (docker save)")
	cmd := flag.String("cmd", "", "image command, space separated (default sh)")
	busybox := flag.String("busybox", testimage.DefaultBusybox, "static busybox `binary` to copy into the image")
	flag.Parse()
	if *out == "" || flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: mkimage -o FILE.tar [-name REF] [-format oci|docker] [-cmd 'CMD ARGS']")
		os.Exit(2)
	}
	opts := testimage.Options{Name: *name, Busybox: *busybox}
	if *cmd != "" {
		opts.Cmd = strings.Fields(*cmd)
	}
	if err := run(*out, *format, opts); err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
}

func run(out, format string, opts testimage.Options) error {
	build := testimage.Build
	switch format {
	case "oci":
	case "docker":
		build = testimage.BuildDockerArchive
	default:
		return fmt.Errorf("unknown -format %q: want oci or docker", format)
	}
	if out == "-" {
		w := bufio.NewWriter(os.Stdout)
		if err := build(w, opts); err != nil {
			return err
		}
		return w.Flush()
	}
	f, err := os.CreateTemp(dirOf(out), ".mkimage-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	w := bufio.NewWriter(f)
	if err := build(w, opts); err != nil {
		f.Close()
		return err
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(f.Name(), out)
}

func dirOf(path string) string {
	if i := strings.LastIndex(path, "/"); i >= 0 {
		return path[:i+1]
	}
	return "."
}
