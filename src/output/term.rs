//! SIGTERM while printing. splunkd stops a scripted input with SIGTERM, then SIGKILL. Outside
//! printing, SIGTERM keeps its default action (the process ends; nothing was printed, or the
//! checkpoint was already saved). While a page is being printed it only sets a flag, and the
//! copy ends at the next line boundary, so a stop never leaves half an event in splunkd's
//! pipe. Windows has no SIGTERM (splunkd ends the process outright there).

#[cfg(unix)]
mod imp {
    use std::sync::Arc;
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// (a SIGTERM arrived, the default action applies)
    static FLAGS: OnceLock<(Arc<AtomicBool>, Arc<AtomicBool>)> = OnceLock::new();

    pub fn install() {
        let arrived = Arc::new(AtomicBool::new(false));
        let default = Arc::new(AtomicBool::new(true));
        let sig = signal_hook::consts::SIGTERM;
        // Registration order matters: the default action (when in force) runs first.
        let ok = signal_hook::flag::register_conditional_default(sig, default.clone()).is_ok()
            && signal_hook::flag::register(sig, arrived.clone()).is_ok();
        if ok {
            let _ = FLAGS.set((arrived, default));
        }
    }

    pub fn arrived() -> bool {
        FLAGS.get().is_some_and(|(a, _)| a.load(Ordering::SeqCst))
    }

    pub fn printing(on: bool) {
        if let Some((_, default)) = FLAGS.get() {
            default.store(!on, Ordering::SeqCst);
        }
    }
}

#[cfg(not(unix))]
mod imp {
    pub fn install() {}
    pub fn arrived() -> bool {
        false
    }
    pub fn printing(_on: bool) {}
}

/// Called once at start: from here on SIGTERM is handled as the module says.
pub fn install() {
    imp::install();
}

/// Whether a SIGTERM arrived while printing.
pub fn arrived() -> bool {
    imp::arrived()
}

/// While it lives, a SIGTERM only sets the flag [`arrived`] reads.
pub struct Printing(());

impl Printing {
    pub fn start() -> Printing {
        imp::printing(true);
        Printing(())
    }
}

impl Drop for Printing {
    fn drop(&mut self) {
        imp::printing(false);
    }
}
