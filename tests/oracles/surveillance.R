# Reference outputs of R's `surveillance` package (Debian r-cran-surveillance) on the
# package's own salmNewport data summed over Germany. Regenerate with
#   Rscript tests/oracles/surveillance.R crates/core/tests/fixtures
# The Rust detectors are tested against these files (crates/core/tests/oracles.rs).
suppressMessages(library(surveillance))
out <- commandArgs(trailingOnly = TRUE)[1]
data("salmNewport")
g <- aggregate(salmNewport, by = "unit")
y <- as.vector(observed(g))
dates <- format(as.Date(epoch(g), origin = "1970-01-01"))
write.csv(data.frame(date = dates, count = y), file.path(out, "salmNewport-germany.csv"),
          row.names = FALSE, quote = FALSE)
# Index-based weekly series (52 points a year) so reference weeks are t − 52·i.
s <- sts(observed = matrix(y, ncol = 1), frequency = 52, start = c(2004, 1))
emit <- function(name, res, range) {
  write.csv(data.frame(index = range, upperbound = sprintf("%.10f", upperbound(res)[, 1]),
                       alarm = as.integer(alarms(res)[, 1])),
            file.path(out, paste0(name, ".csv")), row.names = FALSE, quote = FALSE)
}
r <- 20:length(y)
emit("ears-c1", earsC(s, control = list(range = r, method = "C1", alpha = 0.05)), r)
emit("ears-c2", earsC(s, control = list(range = r, method = "C2", alpha = 0.05)), r)
emit("ears-c3", earsC(s, control = list(range = r, method = "C3", alpha = 0.05)), r)
r <- 300:length(y)
emit("farrington", farringtonFlexible(s, control = list(range = r, b = 5, w = 3,
  weightsThreshold = 1, thresholdMethod = "delta", noPeriods = 1, alpha = 0.05,
  glmWarnings = FALSE)), r)
emit("farrington-noufaily", farringtonFlexible(s, control = list(range = r, b = 5, w = 3,
  weightsThreshold = 2.58, thresholdMethod = "nbPlugin", noPeriods = 10,
  pastWeeksNotIncluded = 26, alpha = 0.05, glmWarnings = FALSE)), r)
