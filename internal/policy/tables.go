package policy

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// Label is a table row or column: its id in the policy and the seed's wording.
type Label struct {
	ID    string `json:"id"`
	Label string `json:"label"`
}

// CatalogEntry is one resource of the catalog (tenantgate help requests).
type CatalogEntry struct {
	Functionality string `json:"functionality"`
	Module        string `json:"module,omitempty"`
	IDIsComputer  bool   `json:"id_is_computer,omitempty"`
}

// Tables is data.tenantgate.tables: the two seed tables, as the policy
// declares them, with the seeds' row and column order.
type Tables struct {
	CustomerTypes      []Label                      `json:"customer_types"`
	Modules            []Label                      `json:"modules"`
	ModuleAvailability map[string]map[string]bool   `json:"module_availability"`
	AvailabilityLabels map[string]string            `json:"availability_labels"`
	Roles              []Label                      `json:"roles"`
	Functionalities    []Label                      `json:"functionalities"`
	Permissions        map[string]map[string]string `json:"permissions"`
	LevelLabels        map[string]string            `json:"level_labels"`
	Catalog            map[string]CatalogEntry      `json:"catalog"`
	MethodAccess       map[string]string            `json:"method_access"`
	LevelGrants        map[string][]string          `json:"level_grants"`
	Statuses           map[string]int               `json:"statuses"`
}

// validate checks that every cell the tables promise is there, so a policy
// edit that drops a cell is a compile error of the snapshot, not a silent deny.
func (t *Tables) validate() error {
	if len(t.CustomerTypes) == 0 || len(t.Modules) == 0 || len(t.Roles) == 0 || len(t.Functionalities) == 0 {
		return fmt.Errorf("customer_types, modules, roles and functionalities must be non-empty lists")
	}
	if len(t.Catalog) == 0 {
		return fmt.Errorf("catalog is empty")
	}
	for _, m := range t.Modules {
		row, ok := t.ModuleAvailability[m.ID]
		if !ok {
			return fmt.Errorf("module_availability: no row for module %q", m.ID)
		}
		for _, c := range t.CustomerTypes {
			if _, ok := row[c.ID]; !ok {
				return fmt.Errorf("module_availability[%q]: no cell for customer type %q", m.ID, c.ID)
			}
		}
	}
	for _, f := range t.Functionalities {
		row, ok := t.Permissions[f.ID]
		if !ok {
			return fmt.Errorf("permissions: no row for functionality %q", f.ID)
		}
		for _, r := range t.Roles {
			lvl, ok := row[r.ID]
			if !ok {
				return fmt.Errorf("permissions[%q]: no cell for role %q", f.ID, r.ID)
			}
			if _, ok := t.LevelLabels[lvl]; !ok {
				return fmt.Errorf("permissions[%q][%q]: level %q has no label", f.ID, r.ID, lvl)
			}
		}
	}
	for name, e := range t.Catalog {
		if _, ok := t.Permissions[e.Functionality]; !ok {
			return fmt.Errorf("catalog[%q]: unknown functionality %q", name, e.Functionality)
		}
		if _, ok := t.ModuleAvailability[e.Module]; e.Module != "" && !ok {
			return fmt.Errorf("catalog[%q]: unknown module %q", name, e.Module)
		}
	}
	return nil
}

// Print writes both seed tables as text, rows and columns in the seeds' order,
// cells in the seeds' words (Available/Unavailable, Full/Read/Read*/N/A).
func (t *Tables) Print(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "Customer types and modules")
	header := []string{"Module or feature"}
	for _, c := range t.CustomerTypes {
		header = append(header, c.Label)
	}
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, m := range t.Modules {
		row := []string{m.Label}
		for _, c := range t.CustomerTypes {
			key := "unavailable"
			if t.ModuleAvailability[m.ID][c.ID] {
				key = "available"
			}
			row = append(row, t.label(t.AvailabilityLabels, key))
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "Roles and functionality")
	header = []string{"Functionality"}
	for _, r := range t.Roles {
		header = append(header, r.Label)
	}
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, f := range t.Functionalities {
		row := []string{f.Label}
		for _, r := range t.Roles {
			row = append(row, t.label(t.LevelLabels, t.Permissions[f.ID][r.ID]))
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	return tw.Flush()
}

func (t *Tables) label(labels map[string]string, key string) string {
	if l, ok := labels[key]; ok {
		return l
	}
	return key
}
