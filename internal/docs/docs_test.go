package docs

import (
	"io/fs"
	"os"
	"slices"
	"strings"
	"testing"
)

// TestEveryTopicListedAndPresent: each embedded file is a listed topic and
// each listed topic has a file, with a title, so `tenantgate help` neither
// hides a page nor lists one that cannot be printed.
func TestEveryTopicListedAndPresent(t *testing.T) {
	var names []string
	for _, tp := range Topics {
		names = append(names, tp.Name)
		text, ok := Text(tp.Name)
		if !ok {
			t.Errorf("topic %q is listed but has no topics/%s.md", tp.Name, tp.Name)
			continue
		}
		if !strings.HasPrefix(text, "# ") || len(text) < 200 {
			t.Errorf("topic %q: want a '# Title' line and a page of text, got %d bytes", tp.Name, len(text))
		}
	}
	entries, err := fs.ReadDir(files, "topics")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if n := strings.TrimSuffix(e.Name(), ".md"); !slices.Contains(names, n) {
			t.Errorf("topics/%s is embedded but not listed in Topics", e.Name())
		}
	}
	for _, bad := range []string{"", "nope", "../docs", "topics/data"} {
		if _, ok := Text(bad); ok {
			t.Errorf("Text(%q) found a topic", bad)
		}
	}
}

// TestTopicsLinkToTopics: a page points at another with `tenantgate help
// NAME`; every such NAME must exist, and no page links to a README anchor
// that moved here.
func TestTopicsLinkToTopics(t *testing.T) {
	for _, tp := range Topics {
		text, _ := Text(tp.Name)
		for _, part := range strings.Split(text, "tenantgate help ")[1:] {
			name := strings.TrimRight(strings.Fields(part + " ")[0], "`.,);:")
			if name == "" || name == "TOPIC" {
				continue
			}
			if _, ok := Text(name); !ok {
				t.Errorf("topic %q refers to `tenantgate help %s`, which does not exist", tp.Name, name)
			}
		}
		if strings.Contains(text, "](#") {
			t.Errorf("topic %q links to an anchor (](#...)): link a topic with `tenantgate help NAME` instead", tp.Name)
		}
	}
}

// TestReadmeIsTheFirstHour: the README stays short (the reference lives
// here) and maps every topic, so a newcomer finds each one from it.
func TestReadmeIsTheFirstHour(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	if n := strings.Count(readme, "\n"); n >= 300 {
		t.Errorf("README.md has %d lines: keep it under 300 and move reference text to a topic", n)
	}
	for _, tp := range Topics {
		if !strings.Contains(readme, "`"+tp.Name+"`") {
			t.Errorf("README.md does not map the topic %q", tp.Name)
		}
	}
	for _, must := range []string{"make run", "make test", "tenantgate help"} {
		if !strings.Contains(readme, must) {
			t.Errorf("README.md does not show %q", must)
		}
	}
}
