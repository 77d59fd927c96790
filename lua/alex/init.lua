return { placeholder = true }
