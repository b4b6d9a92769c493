// The lesson page: every lesson also writes out/<lesson>/index.html, its printed narrative in
// order with each figure inline where the lesson produced it, so a learner can read a run like a
// notebook instead of opening a dozen files one by one. And out/index.html lists every lesson
// run so far with its result numbers.
//
// How a page is recorded (a lesson's own code does nothing for it):
//   - parse_args calls page::begin once the flags are checked. From then on the harness records
//     every lesson::print / print_inline (record_text), every section() heading (record_heading)
//     and every file written under the output folder: core/file_util calls its file-written
//     observer after each successful atomic write (figures, CSV, checkpoints, images...).
//   - Files written some other way (Graphviz's `dot` program, a plain std::ofstream) are caught
//     by a look at the output folder at each section heading and at the end: they show up at the
//     end of the section that wrote them.
//   - Result::print, the last line of every lesson, calls page::finish: it writes
//     <out>/index.html and <out>/result.txt, each atomically, so a lesson stopped midway (an
//     error, Ctrl-C, kill -9) leaves the previous page or none, never half of one. When the output
//     folder is <parent>/<lesson> (the default out/<lesson>), it then rebuilds
//     <parent>/index.html from the lesson folders present there.
//
// What the page shows: section headings as headings (with a contents list at the top); printed
// text as paragraphs, or as monospace blocks where the text is aligned (tables, tensors: a line
// that starts with a space or has two spaces in a row); a progress line redrawn with '\r' only in
// its final state; figures (.svg, .png, .jpg, .gif) directly in the output folder inline as <img>,
// each with links to the files that share its name (its CSV data, graph.dot beside graph.svg);
// other files as links with their sizes; files in a subfolder (a dataset, checkpoints) as one
// line per subfolder with a count and a few links. A file written several times appears once,
// where it was last written (its final state is what is on disk).
//
// The page is static and self-contained: HTML with its CSS inside, no JavaScript, nothing fetched
// from the network; figures are <img> tags pointing at the files beside the page, so the folder
// can be copied or zipped as it is. All text is HTML-escaped.
#pragma once

#include <string>
#include <string_view>

namespace mmgrad::lesson::page {

// Starts recording lesson `lesson` ("04_mini_clip") whose files go to `out_dir`. `summary` is its
// one-line description, `settings` how it was run ("seed 0, device cpu, quick mode"). Forgets a
// page begun earlier in this process.
void begin(const std::string& lesson, const std::string& summary, const std::string& out_dir,
           const std::string& settings);

// Whether a page is being recorded (between begin and end).
bool active();

// Text the lesson printed (as it went to stdout). No-op when no page is active.
void record_text(std::string_view text);

// A section heading ("2. The contrastive loss"). No-op when no page is active.
void record_heading(const std::string& title);

// A file that has just been written (the file-written observer; a path outside the output
// folder is ignored). No-op when no page is active.
void record_file(const std::string& path);

// Writes the page for the lesson's final "result: k=v ..." line (see the header comment). Stays
// active: a later finish rewrites the page with everything recorded so far. Throws mmgrad::Error
// when the page cannot be written.
void finish(const std::string& result_line);

// Stops recording (tests; a lesson just exits).
void end();

// ---- The pieces, tested on their own
// ---------------------------------------------------------------

// & < > " ' as character references: safe in text and in quoted attribute values.
std::string html_escape(std::string_view s);

// Terminal text as a reader saw it at the end: in each line, a '\r' returns to the line start and
// what follows overwrites it (a progress line keeps only its final state); ANSI escape sequences
// (colours, "clear line") and other control characters except '\n' and '\t' are dropped.
std::string final_terminal_text(std::string_view s);

// The course index of folder `parent`: one row per subfolder holding both index.html and
// result.txt (a lesson page), in name order, with its summary, settings and result numbers.
std::string course_index_html(const std::string& parent);

// Writes course_index_html(parent) to <parent>/index.html, atomically.
void write_course_index(const std::string& parent);

}  // namespace mmgrad::lesson::page
