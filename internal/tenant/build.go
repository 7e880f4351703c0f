package tenant

import (
	"fmt"
	"slices"
	"strings"
)

// build merges the parsed files (in name order), runs the checks that need
// every entry, and derives the index. errs holds the errors found so far;
// the returned Data is only meaningful when the returned errs is empty.
//
// It never writes into the parsed files: a Cache hands the same ones to the
// next load, and the Data of the snapshot still serving points into them.
// Users are shared as parsed; customers are copied, since their lineage
// depends on every file.
func build(parsed []*parsedFile, errs Errors) (*Data, Errors) {
	var nc, nu int
	for _, pf := range parsed {
		nc += len(pf.customers)
		nu += len(pf.users)
	}
	d := &Data{
		Customers: make(map[string]*Customer, nc),
		Users:     make(map[string]*User, nu),
	}
	// Allocated whole, so the pointers into it stay put.
	own := make([]Customer, 0, nc)
	// Declaration order (file name, then position), so that "first" in a
	// message means the same thing on every load.
	customers := make([]customerRef, 0, nc)
	users := make([]userRef, 0, nu)

	for _, pf := range parsed {
		errs = append(errs, pf.errs...)
		for i := range pf.customers {
			own = append(own, pf.customers[i])
			c := &own[len(own)-1]
			if prev, dup := d.Customers[c.ID]; dup {
				errs = append(errs, duplicateError("customer", c.ID, c.File, c.Line, prev.File, prev.Line))
				continue
			}
			d.Customers[c.ID] = c
			customers = append(customers, customerRef{c, &pf.cmeta[i]})
		}
		for i := range pf.users {
			u := &pf.users[i]
			if prev, dup := d.Users[u.ID]; dup {
				errs = append(errs, duplicateError("user", u.ID, u.File, u.Line, prev.File, prev.Line))
				continue
			}
			d.Users[u.ID] = u
			m := &pf.umeta[i]
			users = append(users, userRef{u, m, pf.locLines[m.locFirst : m.locFirst+m.locN]})
		}
	}

	for _, r := range customers {
		c := r.c
		if c.Parent == "" {
			continue
		}
		p, ok := d.Customers[c.Parent]
		switch {
		case !ok:
			errs = append(errs, &FieldError{File: c.File, Line: r.meta.parentLine, Kind: "customer", ID: c.ID, Field: "parent",
				Msg: fmt.Sprintf("customer %q does not exist", c.Parent)})
		case p == c:
			errs = append(errs, &FieldError{File: c.File, Line: r.meta.parentLine, Kind: "customer", ID: c.ID, Field: "parent",
				Msg: "a customer cannot be its own parent"})
		case c.Rank != 0 && p.Rank != 0 && c.Rank <= p.Rank:
			// Strictly increasing ranks are what rule out cycles and cap
			// the depth at 5, which the lineage derivation below relies on.
			errs = append(errs, &FieldError{File: c.File, Line: r.meta.parentLine, Kind: "customer", ID: c.ID, Field: "parent",
				Msg: fmt.Sprintf("a %s cannot be below %s %q: a child's type must come after its parent's in %s", c.Type, p.Type, p.ID, typeList)})
		}
	}

	owners := make(map[string]*User)
	var locSets map[*Customer]map[string]struct{}
	for _, r := range users {
		u := r.u
		c, ok := d.Customers[u.Customer]
		if !ok && r.meta.customerLine != 0 {
			errs = append(errs, &FieldError{File: u.File, Line: int(r.meta.customerLine), Kind: "user", ID: u.ID, Field: "customer",
				Msg: fmt.Sprintf("customer %q does not exist", u.Customer)})
		}
		if u.Role == RoleCompanyOwner {
			if first, dup := owners[u.Customer]; dup {
				errs = append(errs, &FieldError{File: u.File, Line: int(r.meta.roleLine), Kind: "user", ID: u.ID, Field: "role",
					Msg: fmt.Sprintf("customer %q already has a company-owner, user %q (%s:%d); a customer has at most one", u.Customer, first.ID, first.File, first.Line)})
			} else {
				owners[u.Customer] = u
			}
		}
		if ok && len(u.Locations) > 0 {
			errs = checkUserLocations(errs, u, r.locLines, c, &locSets)
		}
	}

	if len(errs) > 0 {
		return nil, errs
	}
	var a arena
	deriveLineage(d, customers, &a)
	d.Owners = make(map[string][]*User, len(owners))
	for _, r := range users {
		if u := r.u; u.Role == RoleCompanyOwner {
			k := strings.ToLower(u.ID) // user ids are ASCII: an ASCII fold
			d.Owners[k] = append(d.Owners[k], u)
		}
	}
	return d, nil
}

type customerRef struct {
	c    *Customer
	meta *customerMeta
}

type userRef struct {
	u        *User
	meta     *userMeta
	locLines []int // the line of each of u.Locations
}

func duplicateError(kind, id, file string, line int, prevFile string, prevLine int) *FieldError {
	msg := fmt.Sprintf("duplicate %s id: also declared in %s:%d", kind, prevFile, prevLine)
	if file == prevFile {
		msg = fmt.Sprintf("duplicate %s id in this file (first at line %d)", kind, prevLine)
	}
	return &FieldError{File: file, Line: line, Kind: kind, ID: id, Msg: msg}
}

// checkUserLocations checks that each of u's locations is one of its
// customer's. lines holds the line of each entry (in u.Locations' order).
// Customers usually list a handful of locations, so a linear scan is the
// common case; a long list gets an index, built once per customer in sets.
func checkUserLocations(errs Errors, u *User, lines []int, c *Customer, sets *map[*Customer]map[string]struct{}) Errors {
	var set map[string]struct{}
	if len(c.Locations) > 16 {
		if *sets == nil {
			*sets = make(map[*Customer]map[string]struct{})
		}
		if set = (*sets)[c]; set == nil {
			set = make(map[string]struct{}, len(c.Locations))
			for _, l := range c.Locations {
				set[l] = struct{}{}
			}
			(*sets)[c] = set
		}
	}
	for i, l := range u.Locations {
		found := false
		if set != nil {
			_, found = set[l]
		} else {
			found = slices.Contains(c.Locations, l)
		}
		if !found {
			line := 0
			if i < len(lines) {
				line = lines[i]
			}
			errs = append(errs, &FieldError{File: u.File, Line: line, Kind: "user", ID: u.ID, Field: "locations",
				Msg: fmt.Sprintf("location %q is not one of customer %q's locations", l, c.ID)})
		}
	}
	return errs
}

// deriveLineage fills Rank's companions Lineage and Suspended. It only runs
// on data that passed validation, where every parent exists and has a lower
// rank: visiting customers in rank order therefore meets every parent before
// its children, so each lineage is its parent's plus one id, computed once,
// O(n) overall and without recursion.
func deriveLineage(d *Data, customers []customerRef, a *arena) {
	for rank := 1; rank <= len(Types); rank++ {
		for _, r := range customers {
			c := r.c
			if c.Rank != rank {
				continue
			}
			var parent *Customer
			if c.Parent != "" {
				parent = d.Customers[c.Parent]
			}
			var up, upSuspended []string
			if parent != nil {
				up, upSuspended = parent.Lineage, parent.Suspended
			}
			c.Lineage = a.list(1 + len(up))
			c.Lineage[0] = c.ID
			copy(c.Lineage[1:], up)
			if c.Disabled {
				c.Suspended = a.list(1 + len(upSuspended))
				c.Suspended[0] = c.ID
				copy(c.Suspended[1:], upSuspended)
			} else {
				// Shared with the parent: Data is immutable, and the cap is
				// clipped so an append by a reader could not write into it.
				c.Suspended = slices.Clip(upSuspended)
			}
		}
	}
}
