//! The interactive terminal: raw mode + alternate screen, restored on every way out (normal
//! return, error, panic), and a key reader on its own thread (crossterm's `poll` blocks).

use std::io::{self, Stdout};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Once};
use std::time::Duration;

use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::crossterm::{cursor, execute, terminal};
use ratatui::Terminal;
use tokio::sync::mpsc;

/// True while the screen is in raw/alternate mode (read by the panic hook).
static TERMINAL_ACTIVE: AtomicBool = AtomicBool::new(false);
static PANIC_HOOK: Once = Once::new();

/// The terminal in monitor mode; dropping it restores the user's terminal.
pub struct TerminalGuard {
    pub terminal: Terminal<CrosstermBackend<Stdout>>,
}

impl TerminalGuard {
    pub fn enter() -> io::Result<Self> {
        install_panic_hook();
        terminal::enable_raw_mode()?;
        TERMINAL_ACTIVE.store(true, Ordering::SeqCst);
        if let Err(error) = execute!(io::stdout(), terminal::EnterAlternateScreen, cursor::Hide) {
            restore();
            return Err(error);
        }
        match Terminal::new(CrosstermBackend::new(io::stdout())) {
            Ok(terminal) => Ok(TerminalGuard { terminal }),
            Err(error) => {
                restore();
                Err(error)
            }
        }
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore();
    }
}

/// Leaves raw mode and the alternate screen, once.
fn restore() {
    if TERMINAL_ACTIVE.swap(false, Ordering::SeqCst) {
        let _ = terminal::disable_raw_mode();
        let _ = execute!(io::stdout(), terminal::LeaveAlternateScreen, cursor::Show);
    }
}

/// A panic while the screen is raw would print its message into a garbled terminal and leave
/// it raw: restore first, then run whatever hook was there (installed once per process, and
/// inert while no monitor is on screen).
fn install_panic_hook() {
    PANIC_HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
    });
}

/// What a key press asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAction {
    Quit,
    Pause,
    Resume,
    /// Move the table list by this many lines (negative: up).
    Scroll(isize),
    /// Resized: draw again now.
    Redraw,
}

/// Lines PgUp/PgDn move the table list.
const PAGE: isize = 10;

/// Maps a terminal event to an action (`q`, Esc or Ctrl-C quit; raw mode turns Ctrl-C into a
/// key, not a signal).
pub fn key_action(event: &Event) -> Option<KeyAction> {
    match event {
        Event::Key(key) if key.kind != KeyEventKind::Release => match key.code {
            KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => {
                Some(KeyAction::Quit)
            }
            KeyCode::Char('q' | 'Q') | KeyCode::Esc => Some(KeyAction::Quit),
            KeyCode::Char('p' | 'P') => Some(KeyAction::Pause),
            KeyCode::Char('r' | 'R') => Some(KeyAction::Resume),
            KeyCode::Up | KeyCode::Char('k') => Some(KeyAction::Scroll(-1)),
            KeyCode::Down | KeyCode::Char('j') => Some(KeyAction::Scroll(1)),
            KeyCode::PageUp => Some(KeyAction::Scroll(-PAGE)),
            KeyCode::PageDown | KeyCode::Char(' ') => Some(KeyAction::Scroll(PAGE)),
            KeyCode::Home => Some(KeyAction::Scroll(isize::MIN)),
            _ => None,
        },
        Event::Resize(_, _) => Some(KeyAction::Redraw),
        _ => None,
    }
}

/// Reads keys on a thread until dropped.
pub struct KeyReader {
    stop: Arc<AtomicBool>,
    pub actions: mpsc::UnboundedReceiver<KeyAction>,
}

impl KeyReader {
    pub fn spawn() -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let (sender, actions) = mpsc::unbounded_channel();
        let thread_stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            while !thread_stop.load(Ordering::Relaxed) {
                // Short polls so the thread notices `stop` soon after the monitor quits.
                match event::poll(Duration::from_millis(100)) {
                    Ok(false) => continue,
                    Ok(true) => {}
                    Err(_) => break,
                }
                let Ok(event) = event::read() else { break };
                if let Some(action) = key_action(&event) {
                    if sender.send(action).is_err() {
                        break;
                    }
                }
            }
        });
        KeyReader { stop, actions }
    }
}

impl Drop for KeyReader {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use ratatui::crossterm::event::KeyEvent;

    use super::*;

    #[test]
    fn keys_map_to_actions() {
        let key = |code, modifiers| Event::Key(KeyEvent::new(code, modifiers));
        assert_eq!(
            key_action(&key(KeyCode::Char('q'), KeyModifiers::NONE)),
            Some(KeyAction::Quit)
        );
        assert_eq!(
            key_action(&key(KeyCode::Char('c'), KeyModifiers::CONTROL)),
            Some(KeyAction::Quit)
        );
        assert_eq!(
            key_action(&key(KeyCode::Char('c'), KeyModifiers::NONE)),
            None
        );
        assert_eq!(
            key_action(&key(KeyCode::Char('p'), KeyModifiers::NONE)),
            Some(KeyAction::Pause)
        );
        assert_eq!(
            key_action(&key(KeyCode::Char('r'), KeyModifiers::NONE)),
            Some(KeyAction::Resume)
        );
        assert_eq!(key_action(&Event::Resize(80, 24)), Some(KeyAction::Redraw));
        assert_eq!(
            key_action(&key(KeyCode::Down, KeyModifiers::NONE)),
            Some(KeyAction::Scroll(1))
        );
        assert_eq!(
            key_action(&key(KeyCode::PageUp, KeyModifiers::NONE)),
            Some(KeyAction::Scroll(-PAGE))
        );
    }
}
