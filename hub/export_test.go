package hub

// csvCellForTest lets the external tests check the CSV escaping.
var CsvCellForTest = csvCell
