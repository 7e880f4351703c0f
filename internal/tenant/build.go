package tenant

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// build merges the parsed files (in name order), runs the checks that need
// every entry, and derives the index. errs holds the errors found so far;
// the returned Data is only meaningful when the returned errs is empty.
//
// It never writes into what the parsed files hold: a Cache hands the same
// ones to the next load, and the Data of the snapshot still serving points
// into them. Users are shared as parsed; customers are copied, since their
// lineage depends on every file, and on success the parsed files' customer
// lists are pointed at the copies (same entries, derived fields set).
//
// prev, when not nil, is the last Data built (without errors) from the
// files in prevFiles: the users index then starts as a copy of prev's and
// only the users of the files that changed are taken out and put in
// (usersFrom), which at a million users in 500 files makes an edit to one
// file most of a second cheaper. The result is the same map a whole build
// makes; on any doubt (an id met twice) the index is built whole.
func build(parsed []*parsedFile, errs Errors, prev *Data, prevFiles []*parsedFile) (*Data, Errors) {
	var nc, nu int
	for _, pf := range parsed {
		nc += len(pf.customers)
		nu += len(pf.users)
	}
	// Customers are copied (their lineage depends on every file); users
	// are shared as parsed.
	d := &Data{
		Customers: make(map[string]*Customer, nc),
	}
	if len(errs) == 0 {
		d.Users = usersFrom(prev, prevFiles, parsed)
	}
	incremental := d.Users != nil
	if !incremental {
		d.Users = make(map[string]*User, nu)
	}
	// Allocated whole, so the pointers into it stay put. Entries are
	// visited in declaration order (file name, then position), so that
	// "first" in a message means the same thing on every load; they are
	// visited where they lie rather than through a list of them, which at
	// a million users would be 40 MB more at the peak of every reload.
	own := make([]Customer, 0, nc)
	// The entries shadowed by an earlier one of the same id (each already
	// an error); nil on a good load.
	var dupCustomers map[*Customer]bool
	var dupUsers map[*User]bool

	for _, pf := range parsed {
		errs = append(errs, pf.errs...)
		for i := range pf.customers {
			own = append(own, pf.customers[i])
			c := &own[len(own)-1]
			if prev, dup := d.Customers[c.ID]; dup {
				errs = append(errs, duplicateError("customer", c.ID, c.File, c.Line, prev.File, prev.Line))
				if dupCustomers == nil {
					dupCustomers = make(map[*Customer]bool)
				}
				dupCustomers[c] = true
				continue
			}
			d.Customers[c.ID] = c
		}
		for i := range pf.users {
			if incremental {
				break
			}
			u := &pf.users[i]
			if prev, dup := d.Users[u.ID]; dup {
				errs = append(errs, duplicateError("user", u.ID, u.File, int(u.Line), prev.File, int(prev.Line)))
				if dupUsers == nil {
					dupUsers = make(map[*User]bool)
				}
				dupUsers[u] = true
				continue
			}
			d.Users[u.ID] = u
		}
	}

	k := 0 // own[k] is pf.customers[i]
	for _, pf := range parsed {
		for i := range pf.customers {
			c := &own[k]
			k++
			if c.Parent == "" || dupCustomers[c] {
				continue
			}
			meta := &pf.cmeta[i]
			p, ok := d.Customers[c.Parent]
			switch {
			case !ok:
				errs = append(errs, &FieldError{File: c.File, Line: meta.parentLine, Kind: "customer", ID: c.ID, Field: "parent",
					Msg: fmt.Sprintf("customer %q does not exist", c.Parent)})
			case p == c:
				errs = append(errs, &FieldError{File: c.File, Line: meta.parentLine, Kind: "customer", ID: c.ID, Field: "parent",
					Msg: "a customer cannot be its own parent"})
			case c.Rank != 0 && p.Rank != 0 && c.Rank <= p.Rank:
				// Strictly increasing ranks are what rule out cycles and cap
				// the depth at 5, which the lineage derivation below relies on.
				errs = append(errs, &FieldError{File: c.File, Line: meta.parentLine, Kind: "customer", ID: c.ID, Field: "parent",
					Msg: fmt.Sprintf("a %s cannot be below %s %q: a child's type must come after its parent's in %s", c.Type, p.Type, p.ID, typeList)})
			}
		}
	}

	owners := make(map[string]*User)
	var locSets map[*Customer]map[string]struct{}
	for _, pf := range parsed {
		for i := range pf.users {
			u := &pf.users[i]
			if dupUsers[u] {
				continue
			}
			meta := pf.lines(i)
			c, ok := d.Customers[u.Customer]
			if !ok && meta.customerLine != 0 {
				errs = append(errs, &FieldError{File: u.File, Line: int(meta.customerLine), Kind: "user", ID: u.ID, Field: "customer",
					Msg: fmt.Sprintf("customer %q does not exist", u.Customer)})
			}
			if u.Role == RoleCompanyOwner {
				if first, dup := owners[u.Customer]; dup {
					errs = append(errs, &FieldError{File: u.File, Line: int(meta.roleLine), Kind: "user", ID: u.ID, Field: "role",
						Msg: fmt.Sprintf("customer %q already has a company-owner, user %q (%s:%d); a customer has at most one", u.Customer, first.ID, first.File, first.Line)})
				} else {
					owners[u.Customer] = u
				}
			}
			if ok && len(u.Locations) > 0 {
				errs = checkUserLocations(errs, u, pf.locLines[meta.locFirst:meta.locFirst+meta.locN], c, &locSets)
			}
		}
	}

	if len(errs) > 0 {
		return nil, errs
	}
	var a arena
	deriveLineage(d, own, &a)
	// The parsed files' customers now read the same as own but for the
	// derived fields, which every load derives afresh: the parsed files
	// take own as theirs, so that the cache and the Data share one copy
	// (17 MB at 100,000 customers) instead of holding two. Only a load
	// holding the cache's lock reads them, and own is never written again.
	k = 0
	for _, pf := range parsed {
		n := len(pf.customers)
		pf.customers = own[k : k+n : k+n]
		k += n
	}
	d.Owners = make(map[string][]*User, len(owners))
	for _, pf := range parsed {
		for i := range pf.users {
			if u := &pf.users[i]; u.Role == RoleCompanyOwner {
				k := strings.ToLower(u.ID) // user ids are ASCII: an ASCII fold
				d.Owners[k] = append(d.Owners[k], u)
			}
		}
	}
	return d, nil
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
func deriveLineage(d *Data, customers []Customer, a *arena) {
	for rank := 1; rank <= len(Types); rank++ {
		for i := range customers {
			c := &customers[i]
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

// usersFrom returns the users index of the files in parsed, made from the
// index of prev (built from prevFiles) by taking out the users of the files
// gone or changed and putting in those of the files new or changed; or nil
// when that is not worth it (no prev, or most users changed) or cannot be
// done (a user id met twice: a whole build reports it properly).
func usersFrom(prev *Data, prevFiles, parsed []*parsedFile) map[string]*User {
	if prev == nil {
		return nil
	}
	was := make(map[*parsedFile]bool, len(prevFiles))
	for _, pf := range prevFiles {
		was[pf] = true
	}
	is := make(map[*parsedFile]bool, len(parsed))
	var gone, added []*parsedFile
	moved, total := 0, 0
	for _, pf := range parsed {
		is[pf] = true
		total += len(pf.users)
		if !was[pf] {
			added = append(added, pf)
			moved += len(pf.users)
		}
	}
	for _, pf := range prevFiles {
		if !is[pf] {
			gone = append(gone, pf)
			moved += len(pf.users)
		}
	}
	// Copying the index costs about what inserting a fifth of it does.
	if moved > total/2 || len(prev.Users) < 1000 {
		return nil
	}
	m := maps.Clone(prev.Users)
	for _, pf := range gone {
		for i := range pf.users {
			u := &pf.users[i]
			if m[u.ID] == u {
				delete(m, u.ID)
			}
		}
	}
	for _, pf := range added {
		for i := range pf.users {
			u := &pf.users[i]
			if _, dup := m[u.ID]; dup {
				return nil
			}
			m[u.ID] = u
		}
	}
	return m
}
