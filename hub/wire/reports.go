package wire

// Attributes are a user's report attributes: the body of PUT
// /v1/users/{user}/attributes and its answer (User set). Each is a label of
// 1-32 of a-z 0-9 . _ -, or empty for not known.
type Attributes struct {
	User   string `json:"user,omitempty"`
	Region string `json:"region,omitempty"`
	Bucket string `json:"bucket,omitempty"`
}

// UsageReport answers GET /v1/reports/usage: de-identified usage per ISO
// week ("2026-W05"), one table by region and one by bucket. MinCell is the
// fewest patients a published cell holds; see docs/reports.md.
type UsageReport struct {
	From    string       `json:"from"`
	To      string       `json:"to"`
	MinCell int          `json:"minCell"`
	Tables  []UsageTable `json:"tables"`
}

// UsageTable breaks the report down by one attribute ("region" or
// "bucket"): one row per week, one cell per column. The columns are the
// configured labels, then "other" and "unknown", whatever the data.
type UsageTable struct {
	By      string     `json:"by"`
	Columns []string   `json:"columns"`
	Rows    []UsageRow `json:"rows"`
}

// UsageRow is one week: a cell per column, and the week's total, the same
// in every table.
type UsageRow struct {
	Week  string               `json:"week"`
	Cells map[string]UsageCell `json:"cells"`
	Total UsageCell            `json:"total"`
}

// UsageCell holds the figures of a group of patients in one week. A figure
// that would tell too much about too few is null, and named in Suppressed:
// every figure of a hidden cell, or response times alone.
type UsageCell struct {
	Patients              *int64   `json:"patients"`
	Sessions              *int64   `json:"sessions"`
	Messages              *int64   `json:"messages"`
	Calls                 *int64   `json:"calls"`
	ResponseMedianSeconds *int64   `json:"responseMedianSeconds"`
	ResponseP90Seconds    *int64   `json:"responseP90Seconds"`
	Suppressed            []string `json:"suppressed,omitempty"`
}
