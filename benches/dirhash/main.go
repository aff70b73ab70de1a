// Command dirhash prints Go's h1 of every module zip under a folder, one line per zip
// ("h1:... file"), computed as the go command does (golang.org/x/mod/sumdb/dirhash: HashZip
// with Hash1), with the standard library only, one zip after another as go hashes them. It
// is benches/bulk.sh's baseline: the h1 work alone, with no capture to parse.
//
//	go run ./benches/dirhash DIR
package main

import (
	"archive/zip"
	"bufio"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// hashZip is dirhash.HashZip: Hash1 over the zip's file names and contents.
func hashZip(path string) (string, error) {
	z, err := zip.OpenReader(path)
	if err != nil {
		return "", err
	}
	defer z.Close()
	var names []string
	files := make(map[string]*zip.File)
	for _, f := range z.File {
		names = append(names, f.Name)
		files[f.Name] = f
	}
	sort.Strings(names)
	h := sha256.New()
	for _, name := range names {
		if strings.Contains(name, "\n") {
			return "", errors.New("dirhash: filenames with newlines are not supported")
		}
		r, err := files[name].Open()
		if err != nil {
			return "", err
		}
		hf := sha256.New()
		_, err = io.Copy(hf, r)
		r.Close()
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%x  %s\n", hf.Sum(nil), name)
	}
	return "h1:" + base64.StdEncoding.EncodeToString(h.Sum(nil)), nil
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: dirhash DIR")
		os.Exit(2)
	}
	var paths []string
	err := filepath.WalkDir(os.Args[1], func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && strings.Contains(d.Name(), ".zip") {
			paths = append(paths, p)
		}
		return err
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	sort.Strings(paths)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	for _, p := range paths {
		h1, err := hashZip(p)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", p, err)
			continue
		}
		fmt.Fprintf(out, "%s %s\n", h1, p)
	}
}
