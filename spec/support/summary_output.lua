-- busted output handler: the usual terminal output, then one plain closing line
-- "N passed, N failed, N skipped" from the real counts, which CI reads.
-- Errors (a spec file that fails to load, an error outside an `it`) count as failed.
return function(options)
  local busted = require "busted"
  local handler = require("busted.outputHandlers.utfTerminal")(options)

  busted.subscribe({ "suite", "end" }, function()
    io.write(("%d passed, %d failed, %d skipped\n"):format(
      handler.successesCount, handler.failuresCount + handler.errorsCount, handler.pendingsCount))
    io.flush()
    return nil, true
  end)

  return handler
end
