//! Go's `text/tabwriter` as docker's tables use it (padding with spaces, cells ended
//! by tabs, the last cell of a line not aligned): columns are aligned per block of
//! consecutive lines that have a cell in that column, each as wide as its widest cell
//! plus the padding and at least the minimum width.

/// Aligns `text` (lines of tab-separated cells) with Go's algorithm.
pub fn align(text: &str, minwidth: usize, padding: usize) -> String {
    let lines: Vec<Vec<&str>> = text.split('\n').map(|l| l.split('\t').collect()).collect();
    let mut out = String::with_capacity(text.len() * 2);
    let mut widths = Vec::new();
    let w = Writer {
        lines: &lines,
        minwidth,
        padding,
    };
    w.format(&mut out, &mut widths, 0, lines.len());
    out
}

struct Writer<'a> {
    lines: &'a [Vec<&'a str>],
    minwidth: usize,
    padding: usize,
}

fn width(s: &str) -> usize {
    s.chars().count()
}

impl Writer<'_> {
    fn format(&self, out: &mut String, widths: &mut Vec<usize>, mut line0: usize, line1: usize) {
        let column = widths.len();
        let mut this = line0;
        while this < line1 {
            if column + 1 >= self.lines[this].len() {
                this += 1;
                continue;
            }
            // This line has a cell in this column: a block of such lines starts.
            self.write_lines(out, widths, line0, this);
            line0 = this;
            let mut w = self.minwidth;
            while this < line1 && column + 1 < self.lines[this].len() {
                w = w.max(width(self.lines[this][column]) + self.padding);
                this += 1;
            }
            widths.push(w);
            self.format(out, widths, line0, this);
            widths.pop();
            line0 = this;
        }
        self.write_lines(out, widths, line0, line1);
    }

    fn write_lines(&self, out: &mut String, widths: &[usize], line0: usize, line1: usize) {
        for i in line0..line1 {
            let line = &self.lines[i];
            for (j, cell) in line.iter().enumerate() {
                out.push_str(cell);
                if j < widths.len() {
                    let pad = widths[j].saturating_sub(width(cell));
                    out.extend(std::iter::repeat_n(' ', pad));
                }
            }
            // The text after the last newline is not a line of its own.
            if i + 1 < self.lines.len() {
                out.push('\n');
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::align;

    #[test]
    fn columns_align_per_block_as_go_s_tabwriter() {
        assert_eq!(
            align("A\tBB\nlong\tx\n", 10, 3),
            "A         BB\nlong      x\n"
        );
        assert_eq!(
            align("NAME\tX\na-rather-long-name\ty\n", 10, 3),
            "NAME                 X\na-rather-long-name   y\n"
        );
        // A line without a tab ends the block: the lines after it align anew.
        assert_eq!(
            align("aaaaaaaaaaaaaa\tb\nno tabs\nc\td\n", 10, 3),
            "aaaaaaaaaaaaaa   b\nno tabs\nc         d\n"
        );
        // Empty middle cells are padded; the last cell is not.
        assert_eq!(align("a\t\tc\n", 4, 1), "a       c\n");
    }
}
