package analysis

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/tenantgate/tenantgate/internal/policy"
)

// WriteText prints an explanation for a person: the rows, the facts (in the
// policy's own words: whatever facts it lists), then the decision.
func (e *Explanation) WriteText(w io.Writer) {
	who := e.User
	if who == "" {
		who = "(no valid token)"
	}
	fmt.Fprintf(w, "%s %s as %s\n", e.Method, e.Path, who)
	if e.Token != "" {
		fmt.Fprintf(w, "token rejected: %s\n", e.Token)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ROW\tRESULT\tCHECK\tDENIES WITH")
	for _, r := range e.Rows {
		res := r.Result
		switch res {
		case policy.RowFail:
			res = "FAIL"
		case policy.RowNotReached:
			res = "not reached"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", r.Row, res, r.Check, r.Reason)
	}
	_ = tw.Flush()
	fmt.Fprintln(w, "\nfacts:")
	tw = tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	for _, k := range slices.Sorted(maps.Keys(e.Facts)) {
		fmt.Fprintf(tw, "  %s:\t%s\n", k, compactJSON(e.Facts[k]))
	}
	_ = tw.Flush()
	fmt.Fprintln(w)
	verdict := "DENY"
	if e.Allowed {
		verdict = "ALLOW"
	}
	fmt.Fprintf(w, "%s %d %s\n", verdict, e.Status, e.Reason)
	for _, k := range slices.Sorted(maps.Keys(e.Headers)) {
		fmt.Fprintf(w, "%s: %s\n", k, e.Headers[k])
	}
	if e.Mismatch != "" {
		fmt.Fprintf(w, "\nWARNING: %s\n", e.Mismatch)
	}
}

func compactJSON(raw json.RawMessage) string {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return string(raw)
	}
	b, _ := json.Marshal(v)
	return strings.ReplaceAll(string(b), ",", ", ")
}

// reasonMarks are the one-letter marks of the deny reasons in access's
// table; a reason the policy gives that is not here gets a digit.
var reasonMarks = map[string]string{
	"bad_path": "b", "unauthenticated": "a", "unknown_user": "k", "user_disabled": "u",
	"customer_disabled": "d", "method_not_allowed": "x", "no_route": "n",
	"outside_tenant": "o", "module_unavailable": "m", "role_forbids": "r",
	"location_forbidden": "l", "computer_forbidden": "c", "internal_error": "e",
}

// WriteText prints access as a table: a row per customer (indented by its
// depth below the user's customer) and per qualifier of the user's own
// customer, a column per resource (names written downwards), and per cell
// the read (GET) and write (POST) results: R and W where allowed, else the
// mark of the deny reason; a * where an allowed request carries a scope
// header, so the upstream filters it. A legend follows.
func (a *Access) WriteText(w io.Writer) {
	fmt.Fprintf(w, "%s (%s at %s): GET read, POST write\n\n", a.User, a.Role, a.Customer)
	cells := map[place]map[string]map[string]Cell{}
	var order []place
	for _, c := range a.Cells {
		p := place{Customer: c.Customer, Location: c.Location, Computer: c.Computer}
		if cells[p] == nil {
			cells[p] = map[string]map[string]Cell{}
			order = append(order, p)
		}
		if cells[p][c.Resource] == nil {
			cells[p][c.Resource] = map[string]Cell{}
		}
		cells[p][c.Resource][c.Method] = c
	}
	labels := make([]string, len(order))
	width := 0
	for i, p := range order {
		l := strings.Repeat("  ", a.depth[p.Customer]) + p.Customer
		switch {
		case p.Location != "":
			l = strings.Repeat("  ", a.depth[p.Customer]+1) + "locations/" + p.Location
		case p.Computer != "":
			l = strings.Repeat("  ", a.depth[p.Customer]+1) + "computers/" + p.Computer
		}
		labels[i] = l
		width = max(width, len(l))
	}
	used := map[string]bool{}
	extra := map[string]string{}
	mark := func(o Outcome, allow string) string {
		if o.Allowed {
			return allow
		}
		if m, ok := reasonMarks[o.Reason]; ok {
			used[o.Reason] = true
			return m
		}
		if _, ok := extra[o.Reason]; !ok {
			extra[o.Reason] = fmt.Sprint(len(extra) + 1)
		}
		return extra[o.Reason]
	}
	// Column headers, written downwards, bottom-aligned.
	height := 0
	for _, r := range a.Resources {
		height = max(height, len(r))
	}
	for line := range height {
		var b strings.Builder
		b.WriteString(strings.Repeat(" ", width+1))
		for _, r := range a.Resources {
			i := line - (height - len(r))
			ch := byte(' ')
			if i >= 0 {
				ch = r[i]
			}
			b.WriteString("  ")
			b.WriteByte(ch)
			b.WriteByte(' ')
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
	scoped := false
	for i, p := range order {
		var b strings.Builder
		b.WriteString(labels[i])
		b.WriteString(strings.Repeat(" ", width+1-len(labels[i])))
		for _, r := range a.Resources {
			rd, wr := cells[p][r]["GET"], cells[p][r]["POST"]
			s := mark(rd.Outcome, "R") + mark(wr.Outcome, "W")
			if (rd.Allowed && hasScope(rd.Headers)) || (wr.Allowed && hasScope(wr.Headers)) {
				s += "*"
				scoped = true
			}
			b.WriteByte(' ')
			b.WriteString(s)
			b.WriteString(strings.Repeat(" ", 3-len(s)))
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
	fmt.Fprintln(w, "\nR read allowed, W write allowed; otherwise the deny reason:")
	for _, r := range slices.Sorted(maps.Keys(reasonMarks)) {
		if used[r] {
			fmt.Fprintf(w, "  %s %s\n", reasonMarks[r], r)
		}
	}
	for _, r := range slices.Sorted(maps.Keys(extra)) {
		fmt.Fprintf(w, "  %s %s\n", extra[r], r)
	}
	if scoped {
		fmt.Fprintln(w, "* allowed with a scope header (x-tenantgate-locations/-computers): the upstream filters the collection")
	}
}

func hasScope(h map[string]string) bool {
	_, l := h["x-tenantgate-locations"]
	_, c := h["x-tenantgate-computers"]
	return l || c
}

// WriteText prints who-can: the allowed users, then the others by reason.
func (wc *WhoCan) WriteText(w io.Writer) {
	fmt.Fprintf(w, "%s %s: %d allowed\n\n", wc.Method, wc.Path, len(wc.Allowed))
	if len(wc.Allowed) > 0 {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "USER\tROLE\tCUSTOMER\tSCOPE HEADERS")
		for _, a := range wc.Allowed {
			var scope []string
			for _, k := range slices.Sorted(maps.Keys(a.Headers)) {
				switch k {
				case "x-tenantgate-user", "x-tenantgate-role", "x-tenantgate-customer":
				default:
					scope = append(scope, k+": "+a.Headers[k])
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", a.User, a.Role, a.Customer, strings.Join(scope, "; "))
		}
		_ = tw.Flush()
		fmt.Fprintln(w)
	}
	total := 0
	for _, n := range wc.Denied {
		total += n
	}
	fmt.Fprintf(w, "denied: %d\n", total)
	reasons := slices.SortedFunc(maps.Keys(wc.Denied), func(x, y string) int {
		if d := wc.Denied[y] - wc.Denied[x]; d != 0 {
			return d
		}
		return strings.Compare(x, y)
	})
	for _, r := range reasons {
		fmt.Fprintf(w, "  %-20s %d\n", r, wc.Denied[r])
	}
}

// WriteText prints a diff: per user, what it gains and loses, reason and
// scope header changes; then users added and removed, and the totals.
func (d *Diff) WriteText(w io.Writer) {
	for _, c := range d.Changes {
		switch c.Kind() {
		case "gain":
			fmt.Fprintf(w, "%s gains %s (was %s)\n", c.User, c.Label(), c.Before.Reason)
		case "loss":
			fmt.Fprintf(w, "%s loses %s (now %s)\n", c.User, c.Label(), c.After.Reason)
		case "reason":
			fmt.Fprintf(w, "%s %s: denied %s, was %s\n", c.User, c.Label(), c.After.Reason, c.Before.Reason)
		default:
			fmt.Fprintf(w, "%s %s: headers %s, were %s\n", c.User, c.Label(), headerDelta(c.After.Headers, c.Before.Headers), headerDelta(c.Before.Headers, c.After.Headers))
		}
	}
	s := d.Summary
	if len(s.UsersAdded) > 0 {
		fmt.Fprintf(w, "users added: %s\n", strings.Join(s.UsersAdded, ", "))
	}
	if len(s.UsersRemoved) > 0 {
		fmt.Fprintf(w, "users removed: %s\n", strings.Join(s.UsersRemoved, ", "))
	}
	if s.Changes == 0 {
		fmt.Fprintf(w, "no access changes (%s, %s evaluated)\n", count(s.UsersChecked, "user"), count(s.CellsChecked, "request"))
		return
	}
	fmt.Fprintf(w, "%s for %s: %s, %s, %s, %s (%s, %s evaluated)\n",
		count(s.Changes, "change"), count(s.UsersChanged, "user"), count(s.Gains, "gain"), count(s.Losses, "loss"),
		count(s.Reasons, "reason change"), count(s.Headers, "header change"), count(s.UsersChecked, "user"), count(s.CellsChecked, "request"))
}

// count is "1 user", "2 users": the totals line reads as a sentence.
func count(n int, noun string) string {
	switch {
	case n == 1:
		return "1 " + noun
	case strings.HasSuffix(noun, "s"):
		return fmt.Sprintf("%d %ses", n, noun)
	default:
		return fmt.Sprintf("%d %ss", n, noun)
	}
}

// headerDelta lists the headers of a that b lacks or has otherwise.
func headerDelta(a, b map[string]string) string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(a)) {
		if v, ok := b[k]; !ok || v != a[k] {
			out = append(out, k+"="+a[k])
		}
	}
	if len(out) == 0 {
		return "(none)"
	}
	return strings.Join(out, " ")
}
