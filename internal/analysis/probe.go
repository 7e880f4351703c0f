package analysis

import (
	"strings"

	"github.com/tenantgate/tenantgate/internal/engine"
	"github.com/tenantgate/tenantgate/internal/tenant"
)

// ProbeMethods are the methods of the probe set: one read, one write.
var ProbeMethods = []string{"GET", "POST"}

// Probe is one request of a user's probe set (issue 13): a method on a
// catalog resource's collection at a customer, optionally under a location
// or a computer qualifier.
type Probe struct {
	Customer string `json:"customer"`
	Resource string `json:"resource"`
	Location string `json:"location,omitempty"`
	Computer string `json:"computer,omitempty"`
	Method   string `json:"method"`
}

// Path is the request path the probe asks about. Ids are safe in a path
// as they are (spec section 1), so nothing is escaped.
func (p Probe) Path() string {
	var b strings.Builder
	b.WriteString("/api/v1/customers/")
	b.WriteString(p.Target())
	return b.String()
}

// Target is the path below /api/v1/customers/: "contoso/locations/hq/vbr-jobs".
func (p Probe) Target() string {
	var b strings.Builder
	b.WriteString(p.Customer)
	if p.Location != "" {
		b.WriteString("/locations/")
		b.WriteString(p.Location)
	}
	if p.Computer != "" {
		b.WriteString("/computers/")
		b.WriteString(p.Computer)
	}
	b.WriteByte('/')
	b.WriteString(p.Resource)
	return b.String()
}

func (p Probe) request() engine.Request { return engine.Request{Method: p.Method, Path: p.Path()} }

// place is one row of access: a customer, or a qualifier of the user's own
// customer.
type place struct {
	Customer, Location, Computer string
}

// places lists the rows of a user's probe set: every customer at or below
// the user's (those at or below under, when under is set), depth first, and
// right after the user's own customer, its locations for a location-limited
// user (every location of the customer, so a location the user lacks shows
// as denied) and the user's computers for a subtenant.
func places(t *tree, u *tenant.User, under string) []place {
	var out []place
	for _, c := range t.subtree(u.Customer) {
		if under != "" && !isAtOrBelow(t.data, c, under) {
			continue
		}
		out = append(out, place{Customer: c})
		if c != u.Customer {
			continue
		}
		if len(u.Locations) > 0 {
			for _, l := range t.data.Customers[c].Locations {
				out = append(out, place{Customer: c, Location: l})
			}
		}
		for _, pc := range u.Computers {
			out = append(out, place{Customer: c, Computer: pc})
		}
	}
	return out
}

func isAtOrBelow(d *tenant.Data, id, above string) bool {
	c := d.Customers[id]
	if c == nil {
		return false
	}
	for _, a := range c.Lineage {
		if a == above {
			return true
		}
	}
	return false
}

// probes expands places into the probe set: every resource, every method.
func probes(ps []place, res []string) []Probe {
	out := make([]Probe, 0, len(ps)*len(res)*len(ProbeMethods))
	for _, p := range ps {
		for _, r := range res {
			for _, m := range ProbeMethods {
				out = append(out, Probe{Customer: p.Customer, Location: p.Location, Computer: p.Computer, Resource: r, Method: m})
			}
		}
	}
	return out
}
